using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Event;
using Microsoft.Extensions.Logging;

namespace Broker.Node.Hosting;

/// <summary>
/// Sends the actor system's log events to Microsoft.Extensions.Logging with their message templates and values, so
/// that "Client {ClientId} ({Address}) ..." arrives as structured properties (ClientId, Address, Reason) in whatever
/// the host logs to (the JSON console formatter shows them as fields).
/// </summary>
public sealed class AkkaLogBridge : ReceiveActor, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    private readonly ILoggerFactory _factory;
    private readonly Dictionary<string, ILogger> _loggers = new(StringComparer.Ordinal);

    public AkkaLogBridge()
    {
        _factory = Context.System.Settings.Setup.Get<LoggerFactorySetup>().Value?.Factory
            ?? throw new InvalidOperationException($"{nameof(AkkaLogBridge)} needs a {nameof(LoggerFactorySetup)}");
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(Log);
    }

    private ILogger Logger(string category)
    {
        if (!_loggers.TryGetValue(category, out var logger))
        {
            logger = _factory.CreateLogger(category);
            if (_loggers.Count < 1000) // actor-path sources are bounded in practice; never grow without limit
            {
                _loggers[category] = logger;
            }
        }

        return logger;
    }

    /// <summary>The setup that installs this bridge as the actor system's only logger.</summary>
    public static ActorSystemSetup Setup(ILoggerFactory factory) =>
        ActorSystemSetup.Create(new LoggerFactorySetup(factory), BootstrapSetup.Create().WithConfig(ConfigurationFactory.ParseString(
            $"akka.loggers = [\"{typeof(AkkaLogBridge).FullName}, {typeof(AkkaLogBridge).Assembly.GetName().Name}\"]")));

    private readonly Dictionary<string, bool> _numbered = new(StringComparer.Ordinal);

    /// <summary>True when the template uses string.Format's numbered placeholders ({0}, {1:N0}) rather than names.</summary>
    private bool HasNumberedPlaceholders(string format)
    {
        if (!_numbered.TryGetValue(format, out var numbered))
        {
            numbered = System.Text.RegularExpressions.Regex.IsMatch(format, @"(?<!\{)\{\d+[,:}]");
            if (_numbered.Count < 10_000)
            {
                _numbered[format] = numbered;
            }
        }

        return numbered;
    }

    private void Log(LogEvent e)
    {
        var level = e.LogLevel() switch
        {
            Akka.Event.LogLevel.DebugLevel => Microsoft.Extensions.Logging.LogLevel.Debug,
            Akka.Event.LogLevel.InfoLevel => Microsoft.Extensions.Logging.LogLevel.Information,
            Akka.Event.LogLevel.WarningLevel => Microsoft.Extensions.Logging.LogLevel.Warning,
            _ => Microsoft.Extensions.Logging.LogLevel.Error,
        };
        var category = AkkaLogCategory.Of(e.LogClass, e.LogSource);
        if (level == Microsoft.Extensions.Logging.LogLevel.Information && category.StartsWith("Akka.Cluster", StringComparison.Ordinal)
            && AkkaLogCategory.IsMembershipChange(category, e.Message?.ToString() ?? ""))
        {
            category = AkkaLogCategory.Membership;
        }

        var logger = Logger(category);
        if (!logger.IsEnabled(level))
        {
            return;
        }

        if (e.Message is LogMessage message && !HasNumberedPlaceholders(message.Format))
        {
#pragma warning disable CA2254 // the template is the actor's own constant template, passed through
            logger.Log(level, e.Cause, message.Format, e.GetParameters().ToArray());
#pragma warning restore CA2254
        }
        else if (e.Message is LogMessage numbered)
        {
            // Microsoft.Extensions.Logging binds values to placeholders in order of appearance, whatever their
            // names: Akka's own "Cluster Node [{2}] - Leader is moving node [{0}] to [{1}]" came out with every value
            // in the wrong place. Numbered templates are formatted by Akka, as Akka means them.
            logger.Log(level, e.Cause, "{Message}", numbered.ToString());
        }
        else
        {
            logger.Log(level, e.Cause, "{Message}", e.Message);
        }
    }
}

/// <summary>Carries the host's <see cref="ILoggerFactory"/> into the actor system for <see cref="AkkaLogBridge"/>.</summary>
public sealed class LoggerFactorySetup(ILoggerFactory factory) : Setup
{
    public ILoggerFactory Factory { get; } = factory;
}
