"""Readiness reviews: checklist templates, reviews, items and pre-launch work."""
