namespace Broker.Routing;

/// <summary>
/// Receives each (filter, key, value) entry of a <see cref="TopicTrie{TKey,TValue}"/> that matches a topic.
/// Implement it on a struct and pass it by <c>ref</c> so the walk is allocation-free and the calls are not virtual.
/// A visitor must not modify the trie it is visiting.
/// </summary>
public interface ITopicMatchVisitor<in TKey, in TValue>
{
    void Visit(string filter, TKey key, TValue value);
}
