package libmemcached

/*
#include <libmemcached-1.0/memcached.h>
*/
import "C"

// Behavior is a libmemcached behavior (memcached_behavior_t): a tunable of
// a handle, set with Client.SetBehavior or by pylibmc's name with
// Client.SetBehaviors. The constants are the C enum values themselves, so
// they cannot drift from the linked library's header.
type Behavior int

// The behaviors of memcached_behavior_t. Units follow libmemcached:
// BehaviorConnectTimeout and BehaviorPollTimeout are in milliseconds,
// BehaviorSndTimeout and BehaviorRcvTimeout in microseconds,
// BehaviorRetryTimeout and BehaviorDeadTimeout in seconds.
const (
	BehaviorNoBlock              Behavior = C.MEMCACHED_BEHAVIOR_NO_BLOCK
	BehaviorTCPNoDelay           Behavior = C.MEMCACHED_BEHAVIOR_TCP_NODELAY
	BehaviorHash                 Behavior = C.MEMCACHED_BEHAVIOR_HASH
	BehaviorKetama               Behavior = C.MEMCACHED_BEHAVIOR_KETAMA
	BehaviorSocketSendSize       Behavior = C.MEMCACHED_BEHAVIOR_SOCKET_SEND_SIZE
	BehaviorSocketRecvSize       Behavior = C.MEMCACHED_BEHAVIOR_SOCKET_RECV_SIZE
	BehaviorCacheLookups         Behavior = C.MEMCACHED_BEHAVIOR_CACHE_LOOKUPS
	BehaviorSupportCAS           Behavior = C.MEMCACHED_BEHAVIOR_SUPPORT_CAS
	BehaviorPollTimeout          Behavior = C.MEMCACHED_BEHAVIOR_POLL_TIMEOUT
	BehaviorDistribution         Behavior = C.MEMCACHED_BEHAVIOR_DISTRIBUTION
	BehaviorBufferRequests       Behavior = C.MEMCACHED_BEHAVIOR_BUFFER_REQUESTS
	BehaviorUserData             Behavior = C.MEMCACHED_BEHAVIOR_USER_DATA
	BehaviorSortHosts            Behavior = C.MEMCACHED_BEHAVIOR_SORT_HOSTS
	BehaviorVerifyKey            Behavior = C.MEMCACHED_BEHAVIOR_VERIFY_KEY
	BehaviorConnectTimeout       Behavior = C.MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT
	BehaviorRetryTimeout         Behavior = C.MEMCACHED_BEHAVIOR_RETRY_TIMEOUT
	BehaviorKetamaWeighted       Behavior = C.MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED
	BehaviorKetamaHash           Behavior = C.MEMCACHED_BEHAVIOR_KETAMA_HASH
	BehaviorBinaryProtocol       Behavior = C.MEMCACHED_BEHAVIOR_BINARY_PROTOCOL
	BehaviorSndTimeout           Behavior = C.MEMCACHED_BEHAVIOR_SND_TIMEOUT
	BehaviorRcvTimeout           Behavior = C.MEMCACHED_BEHAVIOR_RCV_TIMEOUT
	BehaviorServerFailureLimit   Behavior = C.MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT
	BehaviorIOMsgWatermark       Behavior = C.MEMCACHED_BEHAVIOR_IO_MSG_WATERMARK
	BehaviorIOBytesWatermark     Behavior = C.MEMCACHED_BEHAVIOR_IO_BYTES_WATERMARK
	BehaviorIOKeyPrefetch        Behavior = C.MEMCACHED_BEHAVIOR_IO_KEY_PREFETCH
	BehaviorHashWithPrefixKey    Behavior = C.MEMCACHED_BEHAVIOR_HASH_WITH_PREFIX_KEY
	BehaviorNoReply              Behavior = C.MEMCACHED_BEHAVIOR_NOREPLY
	BehaviorUseUDP               Behavior = C.MEMCACHED_BEHAVIOR_USE_UDP
	BehaviorAutoEjectHosts       Behavior = C.MEMCACHED_BEHAVIOR_AUTO_EJECT_HOSTS
	BehaviorNumberOfReplicas     Behavior = C.MEMCACHED_BEHAVIOR_NUMBER_OF_REPLICAS
	BehaviorRandomizeReplicaRead Behavior = C.MEMCACHED_BEHAVIOR_RANDOMIZE_REPLICA_READ
	BehaviorCork                 Behavior = C.MEMCACHED_BEHAVIOR_CORK
	BehaviorTCPKeepalive         Behavior = C.MEMCACHED_BEHAVIOR_TCP_KEEPALIVE
	BehaviorTCPKeepidle          Behavior = C.MEMCACHED_BEHAVIOR_TCP_KEEPIDLE
	BehaviorLoadFromFile         Behavior = C.MEMCACHED_BEHAVIOR_LOAD_FROM_FILE
	BehaviorRemoveFailedServers  Behavior = C.MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS
	BehaviorDeadTimeout          Behavior = C.MEMCACHED_BEHAVIOR_DEAD_TIMEOUT
	BehaviorServerTimeoutLimit   Behavior = C.MEMCACHED_BEHAVIOR_SERVER_TIMEOUT_LIMIT
	behaviorMax                  Behavior = C.MEMCACHED_BEHAVIOR_MAX
)

// Hash is a key hashing algorithm (memcached_hash_t), the value of
// BehaviorHash and BehaviorKetamaHash.
type Hash int

// The hash algorithms of memcached_hash_t. Whether a given one is compiled
// into the installed libmemcached (Debian's has no hsieh) shows when it is
// set: SetBehavior returns libmemcached's error.
const (
	HashDefault Hash = C.MEMCACHED_HASH_DEFAULT
	HashMD5     Hash = C.MEMCACHED_HASH_MD5
	HashCRC     Hash = C.MEMCACHED_HASH_CRC
	HashFNV1_64 Hash = C.MEMCACHED_HASH_FNV1_64
	HashFNV1a64 Hash = C.MEMCACHED_HASH_FNV1A_64
	HashFNV1_32 Hash = C.MEMCACHED_HASH_FNV1_32
	HashFNV1a32 Hash = C.MEMCACHED_HASH_FNV1A_32
	HashHsieh   Hash = C.MEMCACHED_HASH_HSIEH
	HashMurmur  Hash = C.MEMCACHED_HASH_MURMUR
	HashJenkins Hash = C.MEMCACHED_HASH_JENKINS
	HashMurmur3 Hash = C.MEMCACHED_HASH_MURMUR3
	HashCustom  Hash = C.MEMCACHED_HASH_CUSTOM
)

// Distribution is how keys are spread over servers
// (memcached_server_distribution_t), the value of BehaviorDistribution.
type Distribution int

// The distributions of memcached_server_distribution_t.
const (
	DistributionModula              Distribution = C.MEMCACHED_DISTRIBUTION_MODULA
	DistributionConsistent          Distribution = C.MEMCACHED_DISTRIBUTION_CONSISTENT
	DistributionConsistentKetama    Distribution = C.MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA
	DistributionRandom              Distribution = C.MEMCACHED_DISTRIBUTION_RANDOM
	DistributionConsistentKetamaSpy Distribution = C.MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA_SPY
	DistributionConsistentWeighted  Distribution = C.MEMCACHED_DISTRIBUTION_CONSISTENT_WEIGHTED
	DistributionVirtualBucket       Distribution = C.MEMCACHED_DISTRIBUTION_VIRTUAL_BUCKET
	DistributionConsistentMax       Distribution = C.MEMCACHED_DISTRIBUTION_CONSISTENT_MAX
)

// Hashers maps pylibmc's hash names ("default", "md5", "crc", "fnv1_64",
// "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"), plus
// "murmur3", to their Hash. Treat it as read-only.
var Hashers = map[string]Hash{
	"default":  HashDefault,
	"md5":      HashMD5,
	"crc":      HashCRC,
	"fnv1_64":  HashFNV1_64,
	"fnv1a_64": HashFNV1a64,
	"fnv1_32":  HashFNV1_32,
	"fnv1a_32": HashFNV1a32,
	"hsieh":    HashHsieh,
	"murmur":   HashMurmur,
	"jenkins":  HashJenkins,
	"murmur3":  HashMurmur3,
}

// Distributions maps pylibmc's distribution names ("modula", "consistent",
// "random", "consistent ketama", "consistent ketama spy", "consistent
// weighted", "virtual bucket", "consistent max") to their Distribution.
// SetBehaviors also accepts them with underscores for spaces. Treat it as
// read-only.
var Distributions = map[string]Distribution{
	"modula":                DistributionModula,
	"consistent":            DistributionConsistent,
	"consistent ketama":     DistributionConsistentKetama,
	"random":                DistributionRandom,
	"consistent ketama spy": DistributionConsistentKetamaSpy,
	"consistent weighted":   DistributionConsistentWeighted,
	"virtual bucket":        DistributionVirtualBucket,
	"consistent max":        DistributionConsistentMax,
}
