using System.Reflection;
using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Gateway.Server.Tests.Storage;

/// <summary>
/// librdkafka's mock cluster API for the cluster a client of this process hosts (<c>test.mock.num.brokers</c>):
/// brokers set down and up. Called in the very librdkafka library Confluent.Kafka loaded (found in this process's
/// mappings), through the client's native handle.
/// </summary>
internal sealed class MockCluster
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr HandleMockCluster(IntPtr rk);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetBroker(IntPtr mcluster, int brokerId);

    private readonly IntPtr _cluster;
    private readonly SetBroker _down;
    private readonly SetBroker _up;

    public MockCluster(IClient owner)
    {
        string path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length >= 6 && f[5].Contains("librdkafka", StringComparison.Ordinal)).Select(f => f[5]).First();
        var library = NativeLibrary.Load(path);
        var handle = (SafeHandle)typeof(Handle).GetProperty("LibrdkafkaHandle", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(owner.Handle)!;
        _cluster = Marshal.GetDelegateForFunctionPointer<HandleMockCluster>(NativeLibrary.GetExport(library, "rd_kafka_handle_mock_cluster"))(handle.DangerousGetHandle());
        Assert.NotEqual(IntPtr.Zero, _cluster);
        _down = Marshal.GetDelegateForFunctionPointer<SetBroker>(NativeLibrary.GetExport(library, "rd_kafka_mock_broker_set_down"));
        _up = Marshal.GetDelegateForFunctionPointer<SetBroker>(NativeLibrary.GetExport(library, "rd_kafka_mock_broker_set_up"));
    }

    public void SetDown(int brokerId) => Assert.Equal(0, _down(_cluster, brokerId));

    public void SetUp(int brokerId) => Assert.Equal(0, _up(_cluster, brokerId));
}
