using Akka.Actor;
using Akka.Persistence;

namespace Broker.Persistence;

/// <summary>
/// Recovers an (empty) persistence id once and reports when the journal answered. Run at start-up so that the SQL
/// plugin's first-use work (connections, table creation) happens before the node says it is ready, not inside the
/// first client's CONNECT.
/// </summary>
public sealed class StorageProbeActor : ReceivePersistentActor
{
    public StorageProbeActor(TaskCompletionSource recovered)
    {
        PersistenceId = "broker-storage-probe";
        Recover<RecoveryCompleted>(_ =>
        {
            recovered.TrySetResult();
            Context.Stop(Self);
        });
        Command<object>(_ => { });
    }

    public override string PersistenceId { get; }

    public static Props Props(TaskCompletionSource recovered) => Akka.Actor.Props.Create(() => new StorageProbeActor(recovered));
}

/// <summary>Start-up check that the journal answers.</summary>
public static class StorageProbe
{
    /// <summary>Waits until the journal answered a recovery; throws <see cref="StorageUnavailableException"/> otherwise.</summary>
    public static async Task ProbeAsync(ActorSystem system, string target, TimeSpan timeout)
    {
        var recovered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        system.ActorOf(StorageProbeActor.Props(recovered), "storage-probe-" + Guid.NewGuid().ToString("N"));
        try
        {
            await recovered.Task.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            throw new StorageUnavailableException($"Storage did not answer within {timeout.TotalSeconds:F0} s: {target}", e);
        }
    }
}
