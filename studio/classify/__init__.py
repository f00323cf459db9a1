"""The educational-value classifier: the curators' rubric scores (0-5) -> features -> a model
chosen by cross-validation -> a stored version -> a score and a keep decision for every page.

``features`` (TF-IDF, hand features; a registry that embeddings plug into), ``models`` (ridge,
logistic, random forest, a blend of two ridges; all saved as plain arrays), ``metrics``,
``train`` (CV and choice), ``versions`` (files and rows of trained classifiers) and ``score``
(batch scoring, keep summary).
Importing this package is cheap: scikit-learn and scipy load inside the calls that use them.
"""
