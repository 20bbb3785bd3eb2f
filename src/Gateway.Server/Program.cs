using Gateway.Server.Groups;
using Gateway.Server.Hosting;
using Gateway.Server.Records;
using Gateway.Server.Security;
using Gateway.Server.Streaming;
using Gateway.Server.Topics;

if (args.Length > 0 && args[0] == HealthProbe.Flag)
{
    return await HealthProbe.RunAsync(args);
}

GatewayHosting.PreferInlineSocketCompletions();
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = GatewayHosting.ContentRoot() });
if (GatewaySecurity.UnsafeStartReason(builder.Configuration) is { } unsafeStart)
{
    await Console.Error.WriteLineAsync(unsafeStart);
    return 2;
}
builder.AddGatewayHosting();

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
await app.RunAsync();
return 0;

/// <summary>The entry point, visible to integration tests.</summary>
public partial class Program;
