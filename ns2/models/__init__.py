"""Pure nn.Modules, one file per box of a paper's figure: ``ns2`` (NaturalSpeech 2) and the baselines."""
