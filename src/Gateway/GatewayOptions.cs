using Wharf.Membership;

namespace Wharf.Gateway;

/// <summary>The gateway process's slice of the <c>Wharf</c> section.</summary>
public sealed class GatewayOptions
{
    public string ClusterId { get; set; } = "wharf";

    public MembershipOptions Membership { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(ClusterId))
        {
            yield return "Wharf:ClusterId must not be empty";
        }
        foreach (var p in Membership.Validate())
        {
            yield return p;
        }
        if (Membership.IsLocalhost)
        {
            yield return "a gateway process needs Wharf:Membership:Provider Consul or Redis to find the silos (Localhost is the all-in-one)";
        }
    }
}
