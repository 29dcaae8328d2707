using Broker.Node.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

if (args.Length > 0 && args[0] == "passwd")
{
    return Broker.Node.Commands.PasswdCommand.Run(args[1..], Console.In, Console.Out, Console.Error);
}

var configuration = BrokerConfiguration.Build(args);
var (options, errors) = BrokerConfiguration.Load(configuration);
if (options is null)
{
    foreach (var error in errors)
    {
        Console.Error.WriteLine($"Configuration error: {error}");
    }

    return 2;
}

// A port that another process holds stops start-up here, in one line, before storage or the cluster are touched.
try
{
    Broker.Transport.ListenerPorts.EnsureFree(Broker.Transport.ListenerPorts.Of(options, includeMetrics: true));
}
catch (Broker.Transport.PortInUseException e)
{
    Console.Error.WriteLine($"Broker failed to start: {e.Message}");
    return 1;
}

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
// Console logs: one line each by default; --Logging:Console:FormatterName=json writes JSON lines whose fields
// include the named values of each message (ClientId, Address, Reason, ...). Levels: --Logging:LogLevel:Default=...
builder.Logging.SetMinimumLevel(LogLevel.Information);
// Akka's own chatter (remoting started, singletons, shard coordinators) and the hosting/Kestrel banner stay at
// Warning, so that the first lines say what matters: storage, cluster, security, listening addresses. Membership
// changes (a node joining, up, unreachable, removed) stay visible. Configuration set later wins, for example
// --Logging:LogLevel:Akka=Information.
builder.Logging.AddFilter("Akka", LogLevel.Warning);
builder.Logging.AddFilter(AkkaLogCategory.Membership, LogLevel.Information);
builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
builder.Logging.AddConfiguration(configuration.GetSection("Logging"));
builder.Logging.AddConsole(); // formatters "simple" (the default here), "json" and "systemd"
// Without a formatter name the console logger takes its legacy path, which ignores SimpleConsoleFormatterOptions
// (two lines per event, no timestamp); name it unless the configuration did (Logging:Console:FormatterName).
builder.Services.Configure<ConsoleLoggerOptions>(o => o.FormatterName ??= ConsoleFormatterNames.Simple);
builder.Services.Configure<SimpleConsoleFormatterOptions>(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
});
builder.Services.Configure<JsonConsoleFormatterOptions>(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ");
builder.Services.AddSingleton(options);
builder.Services.AddHostedService<BrokerHostedService>();
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

try
{
    await builder.Build().RunAsync();
    // 0 after a requested stop; BrokerHostedService.RemovedExitCode when the node was removed from its cluster.
    return Environment.ExitCode;
}
catch (Exception e)
{
    // A storage error already is one line naming the provider and the target; its inner exception (the driver's
    // "Connection refused", "file is not a database") alone would not say which storage was meant.
    // A port in use is one line naming the key, the address and the port.
    var known = Find<Broker.Persistence.StorageUnavailableException>(e) ?? (Exception?)Find<Broker.Transport.PortInUseException>(e);
    Console.Error.WriteLine($"Broker failed to start: {known?.Message ?? e.GetBaseException().Message}");
    return 1;
}

static T? Find<T>(Exception? e)
    where T : Exception
{
    for (; e is not null; e = e.InnerException)
    {
        if (e is T found)
        {
            return found;
        }
    }

    return null;
}
