"""Local servers that speak providers' wire formats, for the adapter contract suite."""
