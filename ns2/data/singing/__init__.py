"""Musical scores for singing synthesis: note types and their validation (:mod:`.notes`), MusicXML and
MIDI + lyrics readers (:mod:`.readers`), and the score -> phonemes / frame durations / F0 converter
(:mod:`.convert`)."""
