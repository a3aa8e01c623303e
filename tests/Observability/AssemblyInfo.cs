// Two in-process hosts would share meters of the same name (OpenTelemetry listens by name, process-wide), so one
// host's /metrics could count the other's store: the test classes run one at a time, each host alone.
[assembly: Xunit.v3.Parallelization(Mode = Xunit.Sdk.ParallelMode.None)]
