"""Every message that leaves: written once, handed on, sent through the channel's
sender, its receipts; templates, SMS encoding, opt-outs, quiet hours, firm notices."""
