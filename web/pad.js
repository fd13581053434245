/* pad.js: the drawing pad and the reduction of a drawing to a 28x28 MNIST
 * image, done the way MNIST itself was made: crop the ink's bounding box,
 * scale it (anti-aliased, aspect ratio kept) to fit a 20x20 box, and place
 * that in a 28x28 frame so that its centre of mass is at the centre. */
'use strict';

var MnistPad = (function () {
  /* Area-averaging resample of a w x h grey image (Float32Array, 0..1) to
   * dw x dh: every output pixel is the mean of the source area it covers
   * (fractional pixels weighted by their overlap), so a big reduction is
   * anti-aliased instead of sampled. */
  function resampleArea(src, w, h, dw, dh) {
    function axis(n, dn) {
      // for each output index: list of [source index, weight]
      var out = [], scale = n / dn;
      for (var i = 0; i < dn; i++) {
        var a = i * scale, b = (i + 1) * scale, taps = [];
        for (var j = Math.floor(a); j < Math.ceil(b) && j < n; j++) {
          var wgt = Math.min(b, j + 1) - Math.max(a, j);
          if (wgt > 0) taps.push([j, wgt / scale]);
        }
        out.push(taps);
      }
      return out;
    }
    var ax = axis(w, dw), ay = axis(h, dh);
    var tmp = new Float32Array(dw * h);
    for (var y = 0; y < h; y++)
      for (var x = 0; x < dw; x++) {
        var s = 0, t = ax[x];
        for (var k = 0; k < t.length; k++) s += src[y * w + t[k][0]] * t[k][1];
        tmp[y * dw + x] = s;
      }
    var out = new Float32Array(dw * dh);
    for (var yy = 0; yy < dh; yy++) {
      var ty = ay[yy];
      for (var xx = 0; xx < dw; xx++) {
        var acc = 0;
        for (var m = 0; m < ty.length; m++) acc += tmp[ty[m][0] * dw + xx] * ty[m][1];
        out[yy * dw + xx] = acc;
      }
    }
    return out;
  }

  /* ink: Float32Array(w*h) of 0..1 (1 = full ink). Returns a
   * Float32Array(784) in 0..1, or null when there is no ink. */
  function toMnist(ink, w, h) {
    var x0 = w, y0 = h, x1 = -1, y1 = -1, thr = 0.05;
    for (var y = 0; y < h; y++)
      for (var x = 0; x < w; x++)
        if (ink[y * w + x] > thr) {
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          if (y > y1) y1 = y;
        }
    if (x1 < 0) return null;
    var bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    var crop = new Float32Array(bw * bh);
    for (var cy = 0; cy < bh; cy++)
      for (var cx = 0; cx < bw; cx++) crop[cy * bw + cx] = ink[(y0 + cy) * w + x0 + cx];
    // fit in 20x20, keeping the aspect ratio
    var s = 20 / Math.max(bw, bh);
    var dw = Math.max(1, Math.min(20, Math.round(bw * s)));
    var dh = Math.max(1, Math.min(20, Math.round(bh * s)));
    var small = resampleArea(crop, bw, bh, dw, dh);
    var max = 0;
    for (var i = 0; i < small.length; i++) if (small[i] > max) max = small[i];
    if (max <= 0) return null;
    // centre of mass (pixel centres)
    var sum = 0, mx = 0, my = 0;
    for (var yy = 0; yy < dh; yy++)
      for (var xx = 0; xx < dw; xx++) {
        var v = small[yy * dw + xx] / max;
        small[yy * dw + xx] = v;
        sum += v;
        mx += v * (xx + 0.5);
        my += v * (yy + 0.5);
      }
    mx /= sum;
    my /= sum;
    // translate so that the centre of mass lands on (14, 14), keeping the
    // whole digit inside the frame
    var ox = Math.round(14 - mx), oy = Math.round(14 - my);
    ox = Math.max(0, Math.min(28 - dw, ox));
    oy = Math.max(0, Math.min(28 - dh, oy));
    var out = new Float32Array(784);
    for (var py = 0; py < dh; py++)
      for (var px = 0; px < dw; px++) out[(oy + py) * 28 + ox + px] = small[py * dw + px];
    return out;
  }

  /* The ink of a canvas drawn dark on white: 1 - luminance. */
  function canvasInk(canvas) {
    var w = canvas.width, h = canvas.height;
    var d = canvas.getContext('2d').getImageData(0, 0, w, h).data;
    var ink = new Float32Array(w * h);
    for (var i = 0; i < w * h; i++) {
      var a = d[4 * i + 3] / 255;
      var lum = (0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2]) / 255;
      ink[i] = a * (1 - lum);
    }
    return ink;
  }

  /* Draws a 28x28 image (0..1) into a canvas, white ink on black as MNIST. */
  function drawMnist(canvas, px) {
    var ctx = canvas.getContext('2d');
    var img = ctx.createImageData(28, 28);
    for (var i = 0; i < 784; i++) {
      var v = Math.round(255 * (px ? px[i] : 0));
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    }
    canvas.width = 28;
    canvas.height = 28;
    ctx.putImageData(img, 0, 0);
  }

  /* A drawing pad on canvas (its width/height attributes are the drawing
   * resolution; CSS may scale it). Mouse, pen and touch through pointer
   * events. onStroke() is called when a stroke ends. */
  function Pad(canvas, onStroke) {
    var ctx = canvas.getContext('2d');
    var drawing = false, last = null, strokes = 0;
    function clear() {
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      strokes = 0;
      canvas.dataset.strokes = '0';
    }
    function pos(e) {
      var r = canvas.getBoundingClientRect();
      return [(e.clientX - r.left) * canvas.width / r.width,
              (e.clientY - r.top) * canvas.height / r.height];
    }
    function line(a, b) {
      ctx.strokeStyle = '#000';
      ctx.fillStyle = '#000';
      ctx.lineWidth = canvas.width / 12;   // a thick pen, as MNIST's strokes
      ctx.lineCap = 'round';
      ctx.lineJoin = 'round';
      ctx.beginPath();
      ctx.moveTo(a[0], a[1]);
      ctx.lineTo(b[0], b[1]);
      ctx.stroke();
    }
    canvas.addEventListener('pointerdown', function (e) {
      if (e.button !== undefined && e.button > 0) return;
      drawing = true;
      last = pos(e);
      line(last, last);
      try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* synthetic */ }
      e.preventDefault();
    });
    canvas.addEventListener('pointermove', function (e) {
      if (!drawing) return;
      var p = pos(e);
      line(last, p);
      last = p;
      e.preventDefault();
    });
    function end(e) {
      if (!drawing) return;
      drawing = false;
      strokes++;
      canvas.dataset.strokes = String(strokes);
      if (e) e.preventDefault();
      if (onStroke) onStroke();
    }
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
    canvas.addEventListener('pointerleave', function (e) { if (drawing) end(e); });
    clear();
    return {
      clear: clear,
      pixels: function () { return toMnist(canvasInk(canvas), canvas.width, canvas.height); }
    };
  }

  return { Pad: Pad, toMnist: toMnist, resampleArea: resampleArea, drawMnist: drawMnist,
           canvasInk: canvasInk };
})();
