// Collections run one after another: the registry, the clients and the test host share two CI cores, and a client
// starved of CPU looks like a registry bug.
[assembly: Xunit.v3.Parallelization(Mode = Xunit.Sdk.ParallelMode.None)]
