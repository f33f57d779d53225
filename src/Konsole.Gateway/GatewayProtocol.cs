using System.Threading.Channels;

namespace Konsole.Gateway;

/// <summary>
/// The <see cref="GatewayActor"/>'s own messages. Everything of <c>RoleRouterProtocol</c> and <c>SessionProtocol</c>
/// may be sent to it too: it forwards those to the router and the session manager, who answer the asker.
/// </summary>
public static class GatewayProtocol
{
    /// <summary>Follows the system's events (swaps, account states, restarts, sessions); replied with <see cref="SystemEventsFollowed"/>.</summary>
    public sealed record FollowSystemEvents
    {
        public static readonly FollowSystemEvents Instance = new();
    }

    /// <summary>
    /// The events, as the domain objects published on the event stream, from now on. The reader completes when the
    /// follower is ended, or with a <see cref="SystemEventsActor.FellBehindException"/> when the reader fell more than
    /// its capacity behind.
    /// </summary>
    public sealed record SystemEventsFollowed(string SubscriptionId, ChannelReader<object> Events);

    public sealed record UnfollowSystemEvents(string SubscriptionId);
}
