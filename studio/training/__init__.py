"""Training a small student language model on a recipe, as a child process."""
