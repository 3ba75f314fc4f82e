#compdef ollama-resident

_ollama_resident_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _OLLAMA_RESIDENT_COMPLETE=complete_zsh ollama-resident)
}

compdef _ollama_resident_completion ollama-resident
