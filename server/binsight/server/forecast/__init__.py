"""Fill forecasts: collections from sharp drops, robust fill rates, time to the threshold with a band."""

from binsight.server.forecast.calibration import forecast_calibrated
from binsight.server.forecast.model import Forecast, forecast_bin

__all__ = ["Forecast", "forecast_bin", "forecast_calibrated"]
