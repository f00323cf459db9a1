"""Teachers: models that write, critique and rewrite textbook pages (llama.cpp in-process, or an
OpenAI-compatible server)."""
