"""Generic building blocks with no business words in them."""
