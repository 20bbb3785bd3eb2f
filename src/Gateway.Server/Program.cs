using Gateway.Server.Groups;
using Gateway.Server.Hosting;
using Gateway.Server.Observability;
using Gateway.Server.Records;
using Gateway.Server.Security;
using Gateway.Server.Storage;
using Gateway.Server.Streaming;
using Gateway.Server.Topics;

if (args.Length > 0 && args[0] == HealthProbe.Flag)
{
    return await HealthProbe.RunAsync(args);
}

GatewayHosting.PreferInlineSocketCompletions();
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = GatewayHosting.ContentRoot() });
builder.ListenOnDefaultUnlessConfigured();
if (GatewaySecurity.UnsafeStartReason(builder.Configuration) is { } unsafeStart)
{
    await Console.Error.WriteLineAsync(unsafeStart);
    return 2;
}
if (StorageComposition.UnknownBackend(builder.Configuration) is { } unknownBackend)
{
    await Console.Error.WriteLineAsync(unknownBackend);
    return 2;
}
if (KafkaListenerHosting.InvalidReason(builder.Configuration) is { } invalidListener)
{
    await Console.Error.WriteLineAsync(invalidListener);
    return 2;
}
builder.AddGatewayHosting();
builder.AddKafkaListener();

var app = builder.Build();
if (app.LockDataDirectory() is { } refusal)
{
    await Console.Error.WriteLineAsync(refusal);
    return 2;
}
app.UseGatewayHosting();
app.MapTopics();
app.MapRecords();
app.MapGroups();
app.MapStreaming();
app.MapPage();
app.PrepareEndpoints();
var exposure = app.Services.GetRequiredService<ExposureCheck>();
try
{
    await app.StartAsync();
    // The configured addresses were checked above; what Kestrel really bound decides.
    if (app.UnsafeExposure() is { } exposed)
    {
        await Console.Error.WriteLineAsync(exposed);
        await app.StopAsync();
        return 2;
    }
    await app.WaitForShutdownAsync();
}
catch (Gateway.Storage.StorageFailureException failure)
{
    // The store cannot be opened (a damaged groups database, a data directory that cannot be read): said plainly.
    await Console.Error.WriteLineAsync($"Refusing to start: {failure.Message}");
    return 1;
}
catch (Microsoft.Extensions.Options.OptionsValidationException invalid)
{
    // A setting out of its range: said plainly, and the same exit code as the other refusals to start.
    await Console.Error.WriteLineAsync($"Refusing to start: {string.Join(" ", invalid.Failures)}");
    return 2;
}
finally
{
    await app.DisposeAsync();
}
return exposure.Refused ? 2 : 0;

/// <summary>The entry point, visible to integration tests.</summary>
public partial class Program;
