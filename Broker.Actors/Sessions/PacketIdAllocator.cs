namespace Broker.Sessions;

/// <summary>
/// Hands out packet identifiers 1..65535 for outbound QoS 1/2 PUBLISH, never one that is still in use
/// [MQTT-2.2.1-3]; a freed identifier becomes reusable [MQTT-2.2.1-4]. Walks forward from the last one given, so
/// identifiers are reused as late as possible (easier to read in traces, kinder to clients that remember recent ids).
/// </summary>
public sealed class PacketIdAllocator
{
    private HashSet<ushort>? _inUse; // created on the first allocation: most sessions never send QoS 1/2
    private ushort _last;

    public int InUse => _inUse?.Count ?? 0;

    /// <summary>The next free identifier, or 0 when all 65,535 are taken.</summary>
    public ushort Allocate()
    {
        var inUse = _inUse ??= new();
        if (inUse.Count >= ushort.MaxValue)
        {
            return 0;
        }

        var id = _last;
        do
        {
            id = id == ushort.MaxValue ? (ushort)1 : (ushort)(id + 1);
        }
        while (inUse.Contains(id));

        inUse.Add(id);
        _last = id;
        return id;
    }

    /// <summary>Marks an identifier as used (recovering a session's in-flight messages).</summary>
    public void Reserve(ushort id)
    {
        (_inUse ??= new()).Add(id);
        _last = id;
    }

    public bool Release(ushort id) => _inUse?.Remove(id) == true;

    public void Clear()
    {
        _inUse?.Clear();
    }
}
