"""One construct per pattern of the stratoflow stack."""
