<?php

use PHPUnit\Framework\TestCase;

/** Money without floats: cloudpe_decimal's exact sums and differences of decimal strings. */
class DecimalTest extends TestCase
{
    /** @dataProvider sums */
    public function testAddAndSubAreExact($a, $b, $sum, $difference)
    {
        $this->assertSame($sum, cloudpe_decimal::add($a, $b));
        $this->assertSame($difference, cloudpe_decimal::sub($a, $b));
    }

    public function sums()
    {
        return array(
            array('0.1', '0.2', '0.3', '-0.1'),
            array('0.1234', '0.0234', '0.1468', '0.1'),
            array('1.25', '0.25', '1.5', '1'),
            array('0', '0', '0', '0'),
            array('999999999999999999.9999999999', '0.0000000001', '1000000000000000000', '999999999999999999.9999999998'),
            array('-1.5', '0.5', '-1', '-2'),
            array('-0.5', '-0.25', '-0.75', '-0.25'),
            array('0.02', '0.02', '0.04', '0'),
            array('10', '0.0000000001', '10.0000000001', '9.9999999999'),
        );
    }

    public function testAThousandTenthsSumToExactlyOneHundred()
    {
        $sum = '0';
        $float = 0.0;
        for ($i = 0; $i < 1000; $i++) {
            $sum = cloudpe_decimal::add($sum, '0.1');
            $float += 0.1;
        }
        $this->assertSame('100', $sum);
        $this->assertNotSame('100', (string) round($float, 13), 'floats would not be exact');
    }

    public function testCompareAndNormal()
    {
        $this->assertSame(1, cloudpe_decimal::compare('0.1', '0.09'));
        $this->assertSame(0, cloudpe_decimal::compare('1.50', '1.5'));
        $this->assertSame(-1, cloudpe_decimal::compare('-2', '1'));
        $this->assertSame(1, cloudpe_decimal::compare('-1', '-2'));
        $this->assertSame('1.5', cloudpe_decimal::normal('1.5000000000'));
        $this->assertSame('0', cloudpe_decimal::normal('-0.000'));
    }

    /** @dataProvider notAmounts */
    public function testOnlyTheStrictFormIsAnAmount($text)
    {
        $this->assertFalse(cloudpe_decimal::isAmount($text));
    }

    public function notAmounts()
    {
        return array(array('1e3'), array('-1'), array('+1'), array(' 1'), array('1.'), array('.5'), array('01'), array('1.12345678901'), array('1,5'), array(1.5), array(null), array('0x10'), array('1234567890123456789'), array('NaN'));
    }

    public function testAmountsThatAreAccepted()
    {
        foreach (array('0', '0.1234', '1.25', '999999999999999999.9999999999', '10') as $amount) {
            $this->assertTrue(cloudpe_decimal::isAmount($amount), $amount);
        }
    }

    public function testAnythingElseIsRefusedByName()
    {
        $this->expectException(InvalidArgumentException::class);
        $this->expectExceptionMessage('not an exact decimal: 1e3');
        cloudpe_decimal::add('1e3', '1');
    }
}
