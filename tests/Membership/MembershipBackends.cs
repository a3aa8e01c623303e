using Wharf.Membership;

namespace Wharf.Tests.Membership;

/// <summary>A membership backend the shared suite runs against, started once per test class.</summary>
public interface IMembershipBackend
{
    MembershipOptions Options { get; }
}

/// <summary>The Consul test peer, with an ACL token so every request of the suite carries one.</summary>
public sealed class ConsulPeerBackend : IMembershipBackend, IAsyncLifetime
{
    public const string Token = "wharf-suite-token";

    public ConsulPeer Peer { get; private set; } = null!;

    public MembershipOptions Options => new() { Provider = MembershipOptions.Consul, Address = Peer.Address.ToString(), Token = Token };

    public async ValueTask InitializeAsync() => Peer = await ConsulPeer.StartAsync(Token);

    public ValueTask DisposeAsync() => Peer.DisposeAsync();
}

/// <summary>A real redis-server with a password, so every connection of the suite authenticates.</summary>
public sealed class RedisBackend : IMembershipBackend, IAsyncLifetime
{
    public const string Password = "wharf-suite-password";

    public RedisServer Server { get; private set; } = null!;

    public MembershipOptions Options => new() { Provider = MembershipOptions.Redis, Address = Server.Address, Token = Password };

    public async ValueTask InitializeAsync() => Server = await RedisServer.StartAsync(Password);

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}
