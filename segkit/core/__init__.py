"""Rules every stage shares, with no heavy imports: errors, atomic writes, file names, metric and
class names, and the scores of a confusion matrix."""
