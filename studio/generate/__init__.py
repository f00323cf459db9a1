"""The generation plan (taxonomy, audiences, styles) and the generate → critique → rewrite loop."""
