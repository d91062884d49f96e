"""Route plans: the route problem built from bins, forecasts and ``[fleet]``, solved in the background."""
