<?php

require_once __DIR__ . '/doubles.php';
require_once __DIR__ . '/../includes/modules/Hosting/cloudpe/class.cloudpe.php';
require_once __DIR__ . '/../includes/modules/Hosting/cloudpe/class.cloudpe_sync.php';
require_once __DIR__ . '/../includes/modules/Hosting/cloudpe/cron/class.cloudpe_controller.php';
require_once __DIR__ . '/FakeHostTestCase.php';
require_once __DIR__ . '/ScriptedHostTestCase.php';
require_once __DIR__ . '/UsageChildProcess.php';
require_once __DIR__ . '/UsageTestCase.php';
require_once __DIR__ . '/RealHostTestCase.php';
require_once __DIR__ . '/CloudpeWithGroupOption.php';
HostBillDoubles::reset();
