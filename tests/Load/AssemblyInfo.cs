// One at a time: each test starts its own registries and shares the machine's two cores with them.
[assembly: Xunit.v3.Parallelization(Mode = Xunit.Sdk.ParallelMode.None)]
