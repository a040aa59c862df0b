<?php

/**
 * Issue 12, end to end with keys made here (PHP's sodium does ed25519): the bundle layout
 * HostBill has (`cloudpe.wasm`, `cloudpe.wasm.sig`, `keys/vendor.pub`) in a scratch folder, the
 * real host and component. A valid signature runs; a component changed by one byte, signed by
 * another key or not signed at all fails every action with a message saying what to do, and the
 * module never throws; the rollback command the message gives brings the module back.
 *
 * Signature format: component-signing (signing/src/lib.rs): a PEM SubjectPublicKeyInfo key, key id
 * = first 16 hex digits of SHA-256 of the 32 raw key bytes, `.sig` = {"algorithm": "ed25519",
 * "key_id", "signature": 128 hex digits} over the file's exact bytes.
 */
class SignedComponentTest extends RealHostTestCase
{
    /** @var string the module folder: cloudpe.wasm, cloudpe.wasm.sig, keys/ */
    private $bundle;
    /** @var array{secret: string, pem: string, id: string} the vendor's key */
    private $vendor;

    public static function setUpBeforeClass(): void
    {
        if (!function_exists('sodium_crypto_sign_keypair')) {
            self::markTestSkipped('PHP has no sodium extension to make ed25519 keys');
        }
        parent::setUpBeforeClass();
    }

    protected function setUp(): void
    {
        parent::setUp();
        $this->bundle = self::$scratch . '/bundle-' . bin2hex(random_bytes(4));
        mkdir($this->bundle . '/keys', 0700, true);
        $this->vendor = self::newKey();
        file_put_contents($this->bundle . '/keys/vendor.pub', $this->vendor['pem']);
        copy(getenv('CLOUDPE_COMPONENT'), $this->component());
        self::sign($this->component(), $this->vendor);
    }

    /** A new ed25519 key: its secret key, its public key as PEM, its id. */
    private static function newKey()
    {
        $pair = sodium_crypto_sign_keypair();
        $public = sodium_crypto_sign_publickey($pair);
        $pem = "-----BEGIN PUBLIC KEY-----\n" . base64_encode(hex2bin('302a300506032b6570032100') . $public) . "\n-----END PUBLIC KEY-----\n";
        return array('secret' => sodium_crypto_sign_secretkey($pair), 'pem' => $pem, 'id' => substr(hash('sha256', $public), 0, 16));
    }

    /** Writes `$file.sig`, the signature of `$file`'s bytes by `$key`. */
    private static function sign($file, array $key)
    {
        $signature = sodium_crypto_sign_detached(file_get_contents($file), $key['secret']);
        file_put_contents($file . '.sig', json_encode(array('algorithm' => 'ed25519', 'key_id' => $key['id'], 'signature' => bin2hex($signature))));
    }

    private function component()
    {
        return $this->bundle . '/cloudpe.wasm';
    }

    /** A module on App 7 whose every host is the real one over this bundle (keys: the bundle's). */
    private function module()
    {
        $module = new cloudpe();
        $bundle = $this->bundle;
        $module->useHostFactory(function ($connection, $timeout, $secrets) use ($bundle) {
            return new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), $bundle . '/cloudpe.wasm', $timeout, $secrets, self::cache());
        });
        $module->connect(self::app('7'));
        $module->setAccount(array('id' => '31', 'client_id' => '41', 'server_id' => '7', 'status' => 'Active'));
        ApiWrapper::$clients['41'] = array('cloudpeid' => (string) (self::FIRST_UID + 21));
        ApiWrapper::$accounts = array(array('id' => '31', 'client_id' => '41', 'server_id' => '7', 'status' => 'Active'));
        return $module;
    }

    private static function last(array $list)
    {
        return $list ? $list[count($list) - 1] : null;
    }

    /** Changes one byte of the component, after it was signed. */
    private function tamper()
    {
        $bytes = file_get_contents($this->component());
        $at = intdiv(strlen($bytes), 2);
        $bytes[$at] = chr(ord($bytes[$at]) ^ 0x01);
        file_put_contents($this->component(), $bytes);
    }

    public function testAValidSignatureRuns()
    {
        $module = $this->module();
        $this->assertTrue($module->Suspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(2, $this->remote(self::FIRST_UID + 21)['status']);
        $this->assertTrue($module->Unsuspend(), implode('; ', $module->recordedErrors()));
        $this->assertTrue($module->testConnection(), implode('; ', $module->recordedErrors()));
        preg_match('/^version = "([^"]+)"/m', file_get_contents(__DIR__ . '/../../guest/Cargo.toml'), $version);
        $this->assertStringStartsWith("Module CloudPe {$version[1]} (signed by key {$this->vendor['id']}): may reach only " . self::$url, self::last($module->recordedInfos()));
    }

    /** @dataProvider badSignatures */
    public function testABadSignatureFailsEveryActionWithWhatToDo($spoil, $why)
    {
        $spoil($this);
        $module = $this->module();
        $why = str_replace('{id}', $this->vendor['id'], $why);
        $actions = array('testConnection', 'Create', 'Suspend', 'Unsuspend', 'Terminate', 'getSynchInfo');
        foreach ($actions as $i => $method) {
            try {
                $this->assertFalse($module->$method(), "{$method} must fail");
            } catch (\Throwable $e) {
                $this->fail("{$method} threw " . get_class($e) . ': ' . $e->getMessage());
            }
            $error = $module->recordedErrors()[$i];
            $this->assertStringStartsWith("CloudPe module: {$this->component()} is refused: {$why}", $error, $method);
            $this->assertStringContainsString("Install the vendor's signed cloudpe.wasm together with its cloudpe.wasm.sig (both from the same release bundle) in {$this->bundle}/", $error);
        }
        $this->assertCount(count($actions), $module->recordedErrors());
        $this->assertSame(array(), $module->recordedInfos());
        $this->assertSame(1, $this->remote(self::FIRST_UID + 21)['status'], 'the CloudPe user was never touched');

        $controller = new cloudpe_controller();
        $controller->module = $this->module();
        $output = $controller->call_Daily();
        $this->assertStringContainsString('App #7 "CloudPe sim 7": FAILED (1 accounts read, 0 changed, 0 errors; 0 CloudPe requests in ', $output);
        $this->assertStringContainsString("is refused: {$why}", $output);
        $this->assertNoSession($output . HbLog::text());
    }

    public function badSignatures()
    {
        return array(
            'one byte changed' => array(function ($t) {
                $t->tamper();
            }, 'it was modified after it was signed by key {id} (the signature does not match its bytes)'),
            'another key' => array(function ($t) {
                self::sign($t->component(), self::newKey());
            }, 'it is signed by key '),
            'no signature' => array(function ($t) {
                unlink($t->component() . '.sig');
            }, 'it is not signed (no signature file)'),
        );
    }

    /**
     * Issue 12 §4 the HostBill way: install a new signed component with the host, a bad copy lands
     * on the active file, every action fails and names the rollback command; running that command
     * as given brings the module back.
     */
    public function testTheRollbackCommandInTheMessageBringsTheModuleBack()
    {
        $module = $this->module();
        $host = $module->host();
        $new = self::$scratch . '/new-' . bin2hex(random_bytes(4)) . '.wasm';
        copy(getenv('CLOUDPE_COMPONENT'), $new);
        self::sign($new, $this->vendor);
        exec($host->command('install', array($new)) . ' 2>/dev/null', $out, $exit);
        $installed = json_decode(implode("\n", $out), true);
        $this->assertSame(0, $exit, implode("\n", $out));
        $this->assertSame($this->vendor['id'], $installed['info']['component']['signature']['key_id']);
        $this->assertFileExists($this->component() . '.previous');

        $this->tamper(); // e.g. a copy that stopped half-way, or a file edited by hand
        $this->assertFalse($module->Suspend());
        $error = $module->recordedErrors()[0];
        $this->assertStringContainsString('it was modified after it was signed', $error);
        $this->assertMatchesRegularExpression("/as the web server's user: (.+ rollback) \\(README: Upgrading the module\\)\\.$/", $error);
        preg_match("/as the web server's user: (.+ rollback) \\(README: Upgrading the module\\)\\.$/", $error, $m);
        $this->assertSame($host->command('rollback'), $m[1]);

        exec($m[1] . ' 2>/dev/null', $out2, $exit);
        $this->assertSame(0, $exit, implode("\n", $out2));
        $this->assertTrue($module->Suspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(2, $this->remote(self::FIRST_UID + 21)['status']);
        $this->assertTrue($module->Unsuspend());
        $this->assertTrue($module->testConnection(), implode('; ', $module->recordedErrors()));
        $this->assertStringEndsWith('is kept for a rollback', self::last($module->recordedInfos()), 'the replaced (bad) file is now the previous one');
    }
}
