"""ollama-resident: keep the right Ollama models loaded."""

__all__ = ["__version__"]

__version__ = "0.1.0"
