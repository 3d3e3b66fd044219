"""Customs documents: manifest, export control result, import declaration, arrival, release."""
