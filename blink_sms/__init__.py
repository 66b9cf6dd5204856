"""Blink SMS: an SMS self-service password reset gateway."""
