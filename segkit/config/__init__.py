"""Typed configuration: one schema module per config group, their ConfigStore registration
(``store``) and every check that spans fields (``validate``). Nothing heavy is imported here: the
config is checked before TensorFlow loads."""
