namespace Broker.LoadTests.Runner;

/// <summary>A growable bit set of message sequence numbers (0, 1, 2, ...), thread-safe by a lock per set.</summary>
public sealed class SeqSet
{
    private readonly object _gate = new();
    private ulong[] _bits = new ulong[16];
    private long _count;

    public long Count
    {
        get
        {
            lock (_gate)
            {
                return _count;
            }
        }
    }

    /// <summary>Adds the sequence; false when it was already there.</summary>
    public bool Add(long seq)
    {
        lock (_gate)
        {
            var word = (int)(seq >> 6);
            if (word >= _bits.Length)
            {
                Array.Resize(ref _bits, Math.Max(_bits.Length * 2, word + 1));
            }

            var mask = 1UL << (int)(seq & 63);
            if ((_bits[word] & mask) != 0)
            {
                return false;
            }

            _bits[word] |= mask;
            _count++;
            return true;
        }
    }

    public bool Contains(long seq)
    {
        lock (_gate)
        {
            var word = (int)(seq >> 6);
            return word < _bits.Length && (_bits[word] & (1UL << (int)(seq & 63))) != 0;
        }
    }

    /// <summary>How many members of this set are missing from <paramref name="other"/>.</summary>
    public long CountMissingFrom(SeqSet? other)
    {
        ulong[] mine;
        lock (_gate)
        {
            mine = (ulong[])_bits.Clone();
        }

        ulong[] theirs = [];
        if (other is not null)
        {
            lock (other._gate)
            {
                theirs = (ulong[])other._bits.Clone();
            }
        }

        long missing = 0;
        for (var i = 0; i < mine.Length; i++)
        {
            var t = i < theirs.Length ? theirs[i] : 0;
            missing += System.Numerics.BitOperations.PopCount(mine[i] & ~t);
        }

        return missing;
    }
}
