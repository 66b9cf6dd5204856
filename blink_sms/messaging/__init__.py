"""Outbound messages: SMS senders, texts and their languages."""
