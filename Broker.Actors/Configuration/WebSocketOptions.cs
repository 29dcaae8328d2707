namespace Broker.Configuration;

/// <summary>
/// MQTT over WebSocket ("Mqtt:WebSocket" section), for browsers and for clients behind proxies that pass only HTTP.
/// Off unless <see cref="Port"/> or <see cref="TlsPort"/> is set. Behind it are the same codec, connection and session
/// actors, limits, authentication, ACL and metrics as on the TCP listener.
/// </summary>
public sealed record WebSocketOptions
{
    /// <summary>Port of the plain (ws://) listener; -1 (default) is off, 0 picks a free one. EMQX uses 8083.</summary>
    public int Port { get; init; } = -1;

    /// <summary>Port of the wss:// listener, with the Mqtt:Tls certificate; -1 (default) is off, 0 picks a free one.</summary>
    public int TlsPort { get; init; } = -1;

    /// <summary>Listen address; empty means the same as Mqtt:Address.</summary>
    public string Address { get; init; } = "";

    /// <summary>The HTTP path clients connect to (ws://host:port/mqtt).</summary>
    public string Path { get; init; } = "/mqtt";

    /// <summary>
    /// Origins (scheme://host[:port]) a browser page may connect from; empty allows every origin. Requests without an
    /// Origin header (non-browser clients) are always allowed.
    /// </summary>
    public IReadOnlyList<string> AllowedOrigins { get; init; } = [];

    /// <summary>
    /// Largest WebSocket message (one frame, or the frames of a fragmented message together) in bytes; a larger one
    /// closes the connection with 1009. 0 (default) means Mqtt:MaxPacketSize.
    /// </summary>
    public int MaxMessageSize { get; init; }

    public bool Enabled => Port >= 0 || TlsPort >= 0;
}
