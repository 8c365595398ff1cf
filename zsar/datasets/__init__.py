"""Datasets: skeleton layouts, sample sources, and the built-in synthetic demo data."""
