"""Serving: an OpenAI-compatible audio chat API, live voice over WebSocket, and a web page."""
