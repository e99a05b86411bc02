"""Default schedules: fast without tuning (see default.py); matmul.py is the contraction one."""
from .default import default_schedule

__all__ = ["default_schedule"]
