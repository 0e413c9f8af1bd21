"""The data scientist's model: train on scikit-learn's digits, load it, predict."""
