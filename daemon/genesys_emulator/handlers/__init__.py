"""Thin request handlers: parse, call the model, render. Failures are ``ApiError``s."""
