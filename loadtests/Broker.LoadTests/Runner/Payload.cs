using System.Buffers.Binary;
using System.Diagnostics;

namespace Broker.LoadTests.Runner;

/// <summary>
/// The runner's message body: [send timestamp: 8 bytes, Stopwatch ticks][publisher id: 4][sequence: 8][padding].
/// Publisher and receiver live in the runner's own process, so the monotonic Stopwatch clock is shared and the
/// latency is exactly receive time minus send time. The sequence makes loss and duplicates countable per message.
/// </summary>
public static class Payload
{
    public const int HeaderSize = 20;

    public static byte[] Create(int size, int publisherId, long sequence)
    {
        var payload = new byte[Math.Max(HeaderSize, size)];
        Write(payload, publisherId, sequence);
        return payload;
    }

    public static void Write(Span<byte> payload, int publisherId, long sequence)
    {
        BinaryPrimitives.WriteInt64LittleEndian(payload, Stopwatch.GetTimestamp());
        BinaryPrimitives.WriteInt32LittleEndian(payload[8..], publisherId);
        BinaryPrimitives.WriteInt64LittleEndian(payload[12..], sequence);
    }

    public static bool TryRead(ReadOnlySpan<byte> payload, out long sentAt, out int publisherId, out long sequence)
    {
        if (payload.Length < HeaderSize)
        {
            sentAt = publisherId = 0;
            sequence = 0;
            return false;
        }

        sentAt = BinaryPrimitives.ReadInt64LittleEndian(payload);
        publisherId = BinaryPrimitives.ReadInt32LittleEndian(payload[8..]);
        sequence = BinaryPrimitives.ReadInt64LittleEndian(payload[12..]);
        return true;
    }

    /// <summary>Microseconds since a Stopwatch timestamp.</summary>
    public static long MicrosecondsSince(long timestamp) =>
        (Stopwatch.GetTimestamp() - timestamp) * 1_000_000 / Stopwatch.Frequency;
}
