namespace Broker.Routing;

/// <summary>
/// This node's replica of every wildcard subscription in the cluster, matched by the topic entities of this node.
/// <para>
/// One writer (the <see cref="WildcardIndexActor"/>, applying replicated changes) and many readers (topic entities
/// on dispatcher threads). Wildcard filters are few and change rarely next to the publish rate, so a reader-writer
/// lock over one <see cref="TopicTrie{TKey,TValue}"/> is cheap: uncontended read locks cost tens of nanoseconds.
/// </para>
/// </summary>
public sealed class WildcardIndex
{
    private readonly TopicTrie<SubscriberKey, byte> _trie = new();
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);

    public int Count
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return _trie.Count;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    internal void Add(string filter, SubscriberKey key)
    {
        _lock.EnterWriteLock();
        try
        {
            _trie.Add(filter, key, 0);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    internal void Remove(string filter, SubscriberKey key)
    {
        _lock.EnterWriteLock();
        try
        {
            _trie.Remove(filter, key);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Appends every (filter, subscriber) whose filter matches the topic.</summary>
    public void Match(string topic, List<(string Filter, SubscriberKey Key, byte Value)> results)
    {
        _lock.EnterReadLock();
        try
        {
            _trie.Match(topic, results);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }
}
