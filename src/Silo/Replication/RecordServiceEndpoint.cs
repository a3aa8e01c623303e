using Grpc.Core;
using Wharf.Contracts.Protos.Records;

namespace Wharf.Silo.Replication;

/// <summary>This node's log replica on gRPC (wharf.records.v1), on the same HTTP/2 port as the byte service.</summary>
public sealed class RecordServiceEndpoint(LogReplica replica) : Records.RecordsBase
{
    public override Task<PrepareReply> Prepare(PrepareRequest request, ServerCallContext context) => Task.FromResult(replica.Prepare(request));

    public override Task<AcceptReply> Accept(AcceptRequest request, ServerCallContext context) => Task.FromResult(replica.Accept(request));

    public override Task<FetchReply> Fetch(FetchRequest request, ServerCallContext context) => Task.FromResult(replica.Fetch(request));

    public override Task<AcceptReply> Forget(ForgetRequest request, ServerCallContext context) => Task.FromResult(replica.Forget(request));
}
