"""Scoring synthetic images: the GAN's own heads and independent classifiers."""
