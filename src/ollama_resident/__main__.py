from ollama_resident.cli import main

main()
