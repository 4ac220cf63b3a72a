"""End-to-end evaluation (design §4, issue 8): a suite of spoken test dialogues, an independent
judge (Whisper base + acoustic measures), the end-to-end system and a cascade baseline, a report.

    judge.py      Whisper transcription, text normalisation, WER, content accuracy
    acoustics.py  F0, speaking rate, loudness, voicing, DNSMOS; style expectations and style_pass
    suite.py      suite data files (`suites/<name>.json`) and the generator behind `make-suite`
    runner.py     run a suite through a system (`e2e` or `cascade`), judge it, write results.json
    report.py     report.md with charts; compare two results files
    cli.py        `aqaa eval run | compare | make-suite`
"""
