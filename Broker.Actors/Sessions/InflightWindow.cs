namespace Broker.Sessions;

/// <summary>
/// Outbound QoS 1/2 messages sent to the client and not yet completed, in the order they were sent (emqx_inflight's
/// role). Its capacity is the smaller of the client's Receive Maximum and Sessions:MaxInflight [MQTT-3.3.4-9]; on
/// reconnect every entry is sent again in order: PUBLISH with DUP for those awaiting PUBACK/PUBREC, PUBREL for those
/// awaiting PUBCOMP [MQTT-4.4.0-1].
/// <code>
///   PUBLISH sent ──PUBACK──► done                         (QoS 1)
///   PUBLISH sent ──PUBREC──► PUBREL sent ──PUBCOMP──► done (QoS 2)
/// </code>
/// </summary>
public sealed class InflightWindow
{
    private OrderedDictionary<ushort, InflightMessage>? _entries; // created with the first message sent: most sessions never send one

    public InflightWindow(int capacity)
    {
        Capacity = capacity;
    }

    public int Capacity { get; set; }

    public int Count => _entries?.Count ?? 0;

    public bool IsFull => Count >= Capacity;

    public IEnumerable<InflightMessage> Entries => _entries?.Values ?? (IEnumerable<InflightMessage>)[];

    public void Add(InflightMessage message) => (_entries ??= new())[message.PacketId] = message;

    public bool Contains(ushort packetId) => _entries?.ContainsKey(packetId) == true;

    public bool TryGet(ushort packetId, out InflightMessage message)
    {
        message = null!;
        return _entries?.TryGetValue(packetId, out message!) == true;
    }

    /// <summary>Marks a QoS 2 entry as released (PUBREC received, PUBREL sent).</summary>
    public bool Release(ushort packetId)
    {
        if (_entries is null || !_entries.TryGetValue(packetId, out var m) || m.Message.QoS != Protocol.MqttQoS.ExactlyOnce)
        {
            return false;
        }

        _entries[packetId] = m with { Released = true };
        return true;
    }

    public bool Remove(ushort packetId) => _entries?.Remove(packetId) == true;

    /// <summary>Replaces every entry by <paramref name="map"/>'s result (same packet id), keeping the order.</summary>
    public void Map(Func<InflightMessage, InflightMessage> map)
    {
        for (var i = 0; i < Count; i++)
        {
            var (id, entry) = _entries!.GetAt(i);
            _entries.SetAt(i, map(entry) with { PacketId = id });
        }
    }

    public void Clear() => _entries?.Clear();

    /// <summary>Removes every entry the predicate selects (their packet ids become free).</summary>
    public List<InflightMessage> RemoveWhere(Func<InflightMessage, bool> predicate)
    {
        var removed = new List<InflightMessage>();
        if (_entries is null)
        {
            return removed;
        }

        foreach (var entry in _entries.Values)
        {
            if (predicate(entry))
            {
                removed.Add(entry);
            }
        }

        foreach (var entry in removed)
        {
            _entries.Remove(entry.PacketId);
        }

        return removed;
    }
}
