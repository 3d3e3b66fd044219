"""greenlane: the green corridor node for agri-food trade between two border agencies."""

__version__ = "0.1.0"
