"""The emergency stop: halting every run of Treadle, or of one workspace, and letting go.

docs/governance.md#emergency-stop says what users see. Here:

* :mod:`.changes` sets and lifts stops (``treadle emergency-stop on|off``, the API), in the
  caller's audited transaction, and ``NOTIFY``s the schedulers;
* :mod:`.guard` is a scheduler's view of the stops (read on that notice, or every few
  seconds) and its gate: while a stop holds a run, the run's new dispatches are withheld
  from the broker, never published;
* :mod:`.sweep` is what a scheduler does about it: pause the runs a stop holds (remembered,
  so lifting resumes exactly those), take back their attempts from the broker (ended
  ``lost``: each runs again after the stop, its retry policy not charged), terminate the
  running ones when the stop says so, and resume the runs once their stop is lifted.

Schedules skip their fires while a stop holds (:mod:`~treadle.scheduler.service.schedule_firing`);
``why`` names the stop (:mod:`~treadle.scheduler.service.why`).
"""
